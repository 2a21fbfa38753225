"""``tars contacts``: the people TARS knows, their numbers and what they may ask for."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tars.cli import context, output

if TYPE_CHECKING:
    from collections.abc import Callable

    from tars.store.models import Contact

app = typer.Typer(
    help="The people TARS knows: numbers, birthdays and roles (what they may ask TARS for).",
    no_args_is_help=True,
)

EmailOpt = Annotated[str | None, typer.Option("--email", help="Email address.", show_default=False)]
RelationshipOpt = Annotated[
    str | None,
    typer.Option("--relationship", help="Who they are to you, e.g. sister, dentist.", show_default=False),
]
BirthdayOpt = Annotated[
    str | None,
    typer.Option("--birthday", help="YYYY-MM-DD, or --MM-DD without the year.", show_default=False),
]
NotesOpt = Annotated[str | None, typer.Option("--notes", help="Anything TARS should know.", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="contacts")


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Their name, as you would say it.")],
    phone: Annotated[str, typer.Argument(help="Their number; without a country code it is read in your region.")],
    email: EmailOpt = None,
    relationship: RelationshipOpt = None,
    birthday: BirthdayOpt = None,
    role: Annotated[
        str,
        typer.Option("--role", help="A role from tars.yaml (what they may ask for), or 'blocked'."),
    ] = "contact",
    notes: NotesOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add someone. Example: tars contacts add 'Alice Smith' '07700 900123' --relationship sister"""
    from tars.store.contacts import add_contact

    _save(
        ctx,
        add_contact,
        lambda c: f"Added {_who(c)} as {output.escape(c.role)}",
        as_json,
        name=name,
        phone=phone,
        email=email,
        relationship=relationship,
        birthday=birthday,
        role=role,
        notes=notes,
    )


@app.command("list")
def list_(
    ctx: typer.Context,
    role: Annotated[
        str | None, typer.Option("--role", help="Only contacts with this role.", show_default=False)
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Everyone, by name."""
    from tars.store.contacts import contact_json, list_contacts
    from tars.store.database import connect

    project = context.load(ctx)
    with connect(project.database_url) as db, db.session() as session:
        contacts = list_contacts(session, role)
    empty = "No contacts yet. Add one with [bold]tars contacts add NAME PHONE[/]."
    if role and not contacts:
        empty = _nobody_with(project, role)
    if output.listed(contacts, as_json, contact_json, empty):
        return
    from tars.store.phones import pretty_phone

    table = output.table()
    for header in ("Name", "Phone", "Role", "Relationship", "Email", "Birthday"):
        # a number, a role or a date split over two lines reads as two; names and emails may wrap
        if header == "Email":
            table.add_column(header, overflow="fold")
        else:
            table.add_column(header, no_wrap=header in ("Phone", "Role", "Birthday"))
    for c in contacts:
        cells = (c.name, pretty_phone(c.phone), c.role, c.relationship, c.email, c.birthday)
        table.add_row(*(output.escape(v or "") for v in cells))
    output.out.print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Their name (close enough will do).")],
    as_json: JsonOpt = False,
) -> None:
    """Everything about one contact."""
    from tars.store.contacts import contact_json, get_contact
    from tars.store.database import connect

    project = context.load(ctx)
    with connect(project.database_url) as db, db.session() as session:
        contact = get_contact(session, name, fuzzy=True)
    if as_json:
        output.print_json(contact_json(contact))
        return
    from rich.table import Table

    from tars import timeparse
    from tars.store.phones import pretty_phone

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="dim")
    table.add_column()
    tz = project.owner.timezone
    rows = [
        ("name", contact.name),
        ("phone", pretty_phone(contact.phone)),
        ("role", contact.role),
        ("relationship", contact.relationship),
        ("email", contact.email),
        ("birthday", contact.birthday),
        ("notes", contact.notes),
        ("added", timeparse.show(contact.created_at, tz)),
        ("changed", timeparse.show(contact.updated_at, tz)),
    ]
    for label, value in rows:
        if value:
            table.add_row(label, output.escape(value))
    output.out.print(table)


@app.command("edit")
def edit(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Their current name.")],
    new_name: Annotated[str | None, typer.Option("--name", help="A new name.", show_default=False)] = None,
    phone: Annotated[str | None, typer.Option("--phone", help="A new number.", show_default=False)] = None,
    email: EmailOpt = None,
    relationship: RelationshipOpt = None,
    birthday: BirthdayOpt = None,
    role: Annotated[str | None, typer.Option("--role", help="A role from tars.yaml, or 'blocked'.")] = None,
    notes: NotesOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a contact. Give an empty value (--email '') to clear a field."""
    from tars.store.contacts import edit_contact

    _save(
        ctx,
        lambda session, rules, **fields: edit_contact(session, rules, name, **fields),
        lambda c: f"Updated {_who(c)}, role {output.escape(c.role)}",
        as_json,
        name=new_name,
        phone=phone,
        email=email,
        relationship=relationship,
        birthday=birthday,
        role=role,
        notes=notes,
    )


@app.command("rm")
def remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Their exact name (case and accents do not matter).")],
) -> None:
    """Remove a contact. Their calls and reminders are kept, no longer linked to them."""
    from tars.store.contacts import remove_contact
    from tars.store.database import connect

    project = context.load(ctx)
    with connect(project.database_url) as db, db.session() as session:
        contact = remove_contact(session, name)
        _birthdays(session, project)
    output.line(f"[green]✓[/] Removed {_who(contact)}")


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A vCard (.vcf) or CSV (.csv, with a header row) file.")],
    as_json: JsonOpt = False,
) -> None:
    """Add contacts from a vCard or CSV export; reports every one skipped and why."""
    from tars.store.contact_files import import_contacts
    from tars.store.contacts import Rules
    from tars.store.database import connect

    project = context.load(ctx)
    with connect(project.database_url) as db, db.session() as session:
        report = import_contacts(session, Rules.of(project), file)
        _birthdays(session, project)
    if as_json:
        skipped = [{"where": w, "name": n, "reason": r} for w, n, r in report.skipped]
        output.print_json({"added": report.added, "skipped": skipped})
        return
    noun = "contact" if len(report.added) == 1 else "contacts"
    output.out.print(f"[green]✓[/] Imported {len(report.added)} {noun} from {output.escape(file.name)}")
    if report.skipped:
        from rich.table import Table

        output.out.print(f"[yellow]Skipped {len(report.skipped)}:[/]")
        table = Table("Where", "Name", "Why", box=None, pad_edge=False)
        for where, who, why in report.skipped:
            table.add_row(output.escape(where), output.escape(who), output.escape(why))
        output.out.print(table)


def _save(
    ctx: typer.Context,
    write: Callable[..., Contact],
    done: Callable[[Contact], str],
    as_json: bool,
    **fields: str | None,
) -> None:
    """What add and edit share: ``write(session, rules, **fields)`` in one session of the
    project's database, then the contact as JSON or ``done(contact)`` as a line."""
    from tars.store.contacts import Rules, contact_by_phone, contact_json, list_contacts
    from tars.store.database import connect

    project = context.load(ctx)
    with connect(project.database_url) as db, db.session() as session:
        contact = write(session, Rules.of(project), **fields)
        _birthdays(session, project)
        first = contact_by_phone(session, contact.phone)
        sharing = [c.name for c in list_contacts(session) if c.phone == contact.phone and c.id != contact.id]
    if as_json:
        output.print_json(contact_json(contact))
    else:
        output.line(f"[green]✓[/] {done(contact)}")
    if sharing and first is not None:
        from tars.store.phones import pretty_phone

        output.err.print(
            f"[yellow]Note:[/] {pretty_phone(contact.phone)} is also the number of "
            f"{output.escape(', '.join(sharing))}; "
            f"calls from it are taken as {output.escape(first.name)}'s (role {output.escape(first.role)})."
        )


def _birthdays(session: object, project: object) -> None:
    """Contacts changed: their birthday reminders follow (tars.birthdays)."""
    from tars import timeparse
    from tars.birthdays import sync

    sync(session, project, timeparse.clock_now())  # type: ignore[arg-type]


def _nobody_with(project: object, role: str) -> str:
    """What `contacts list --role ROLE` says when nobody has it; a role that does not exist is
    an error naming the roles that do."""
    from tars.config.diagnostics import suggestion
    from tars.errors import UserError

    known = [*sorted(getattr(project, "roles", {})), "blocked"]
    if role not in known:
        raise UserError(f"{role!r} is not a role in tars.yaml{suggestion(role, known)}", f"roles: {', '.join(known)}")
    return f"No contact has the role {output.escape(repr(role))}."


def _who(contact: Contact) -> str:
    from tars.store.phones import pretty_phone

    return f"{output.escape(contact.name)} ({pretty_phone(contact.phone)})"
