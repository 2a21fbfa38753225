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
    phone: Annotated[
        str | None,
        typer.Option(help="Your mobile number: +447700900123, or a national number in --region."),
    ] = None,
    email: Annotated[str | None, typer.Option(help="Your email address.")] = None,
    timezone: Annotated[str | None, typer.Option(help="Your IANA timezone, e.g. Europe/London.")] = None,
    region: Annotated[
        str | None,
        typer.Option(
            help="Your country (GB, US…), for numbers written without a country code "
            "(default: your number's country, else GB).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Create a TARS project from the example. Existing files are never overwritten."""
    from tars.scaffold import OwnerDetails, scaffold

    if region is not None:
        import re

        region = region.strip().upper()
        if not re.fullmatch(r"[A-Z]{2}", region):
            raise UserError(f"'{region}' is not a country code", "Use two letters, such as GB or US.", code=2)
    if phone is not None:
        phone, region = _phone_and_region(phone, region)
    if email is not None and "@" not in email.strip(" @"):
        raise UserError(f"'{email}' is not an email address", "Write it like alex@example.com.")
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
    report = scaffold(directory, OwnerDetails(name, phone, timezone, email, region))
    for rel in report.created:
        output.out.print(f"[green]created[/] {directory / rel}")
    for rel in report.kept:
        output.out.print(f"[yellow]kept[/]    {directory / rel} (already there; not overwritten)")
    where = "" if directory.resolve() == Path.cwd() else f" --project {directory}"
    output.out.print(
        f"\nNext: edit {directory / 'tars.yaml'} (owner, numbers), put secrets in .env "
        f"(see .env.example), then run [bold]tars{where} validate[/]."
    )


def _phone_and_region(phone: str, region: str | None) -> tuple[str, str | None]:
    """The owner's number in E.164 and the region it implies: a national number is read in
    ``region`` (else the example's GB), as `tars contacts add` reads it; a number with a
    country code sets the region unless one was given."""
    import phonenumbers

    from tars.store.phones import normalize_phone

    try:
        e164 = normalize_phone(phone, region or "GB")
    except UserError as exc:
        raise UserError(str(exc), exc.hint) from None
    if region is None:
        number = phonenumbers.parse(e164, None)
        found = phonenumbers.region_code_for_number(number) or phonenumbers.region_code_for_country_code(
            number.country_code
        )  # a fictional 555 number has no region of its own: its country code's main one
        region = None if found in (None, "ZZ", "001") else found
    return e164, region


def register(app: typer.Typer) -> None:
    app.command("init")(init)
