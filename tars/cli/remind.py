"""``tars remind``: reminders in plain words, delivered by call, SMS or webhook.

Times are read and shown in the owner's timezone (tars.yaml ``owner.timezone``).
``TARS_NOW`` (an ISO 8601 time) stands in for the clock, for tests and demos.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import typer

from tars.cli import context, output

if TYPE_CHECKING:
    from tars.project import Project
    from tars.store.models import Reminder

app = typer.Typer(
    help="Reminders in plain words: 'tomorrow 2pm', 'in 20 minutes', 'every weekday at 9'.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
IdArg = Annotated[int, typer.Argument(help="The reminder's id (from `tars remind list`).")]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="remind")


@app.command("add")
def add(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="What to remind you of.")],
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            help="When, in your timezone: 'tomorrow 2pm', 'in 20 minutes', 'next Friday at 9', "
            "'2025-04-01T09:00'. May be left out if --every names a time.",
            show_default=False,
        ),
    ] = None,
    every: Annotated[
        str | None,
        typer.Option(
            "--every",
            help="Repeat: 'daily', 'weekly', 'every weekday', 'every monday at 9', "
            "'every 2 hours', or an RRULE such as FREQ=WEEKLY;BYDAY=MO,TH.",
            show_default=False,
        ),
    ] = None,
    via: Annotated[
        str,
        typer.Option(
            "--via", help="call, sms or webhook; default: delivery.reminders in tars.yaml.", show_default=False
        ),
    ] = "default",
    contact: Annotated[
        str | None,
        typer.Option("--contact", help="A contact this reminder is about.", show_default=False),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a reminder. Example: tars remind add 'call the dentist' --at 'tomorrow 9am'"""
    from tars import timeparse
    from tars.store.database import connect
    from tars.store.reminders import contact_names, create_reminder, reminder_json

    project = context.load(ctx)
    _check_channel(project, via)
    now = timeparse.clock_now()
    with connect(project.database_url) as db, db.session() as session:
        reminder = create_reminder(
            session,
            text=text,
            when=at,
            every=every,
            via=via,
            contact=contact,
            timezone=project.owner.timezone,
            now=now,
        )
        names = contact_names(session, [reminder])
    if as_json:
        output.print_json(reminder_json(reminder, names.get(reminder.contact_id or 0)))
        _say_if_no_server(project)
        return
    line = (
        f"[green]✓[/] Reminder {reminder.id}: {output.escape(reminder.text)} — "
        f"{timeparse.show(reminder.due, reminder.timezone)} ({_from_now(reminder.due, now)})"
    )
    if reminder.recurrence:
        line += f", {output.escape(timeparse.describe_repeat(reminder.recurrence))}"
    line += f", via {_channel(project, reminder.channel)}"
    if reminder.contact_id:
        line += f", about {output.escape(names.get(reminder.contact_id, '?'))}"
    output.line(line)
    _say_if_months_are_skipped(reminder)
    _say_if_no_server(project)


@app.command("list")
def list_(
    ctx: typer.Context,
    show_all: Annotated[bool, typer.Option("--all", help="Also delivered and cancelled ones.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Reminders to come (and failed ones), soonest first."""
    from tars import timeparse
    from tars.store.database import connect
    from tars.store.reminders import contact_names, list_reminders, reminder_json

    project = context.load(ctx)
    with connect(project.database_url) as db, db.session() as session:
        reminders = list_reminders(session, include_closed=show_all)
        names = contact_names(session, reminders)
    hint = "" if show_all else " (--all shows delivered and cancelled ones)"
    empty = f"No reminders{hint}. Add one with [bold]tars remind add TEXT --at WHEN[/]."
    if output.listed(reminders, as_json, lambda r: reminder_json(r, names.get(r.contact_id or 0)), empty):
        return
    tz = project.owner.timezone
    table = output.table(caption=f"times in {tz}")
    for header in ("ID", "Due", "Reminder", "Repeats", "Via", "About", "Status"):
        table.add_column(header, no_wrap=header in ("ID", "Due", "Via"))
    for r in reminders:
        status = _status(r, tz)
        table.add_row(
            str(r.id),
            timeparse.show(r.due, tz),
            output.escape(r.text),
            output.escape(timeparse.describe_repeat(r.recurrence)),
            _channel(project, r.channel),
            output.escape(names.get(r.contact_id or 0, "")),
            output.escape(status),
        )
    output.out.print(table)


@app.command("done")
def done(ctx: typer.Context, reminder_id: IdArg, as_json: JsonOpt = False) -> None:
    """Mark a reminder done (a repeating one moves on to its next time)."""
    from tars import timeparse
    from tars.store.database import connect
    from tars.store.reminders import mark_done

    project = context.load(ctx)
    with connect(project.database_url) as db, db.session() as session:
        reminder = mark_done(session, reminder_id, timeparse.clock_now(), strict=True)
    _report(project, reminder, "Done", as_json)


@app.command("snooze")
def snooze(
    ctx: typer.Context,
    reminder_id: IdArg,
    until: Annotated[str, typer.Argument(help="For how long or until when: '10 minutes', '1h', 'tomorrow 9am'.")],
    as_json: JsonOpt = False,
) -> None:
    """Put a reminder off: by a while ('10 minutes', '1h') or until a time ('tomorrow 9am')."""
    from tars import timeparse
    from tars.store.database import connect
    from tars.store.reminders import snooze as snooze_reminder

    project = context.load(ctx)
    now = timeparse.clock_now()
    when = timeparse.parse_future(until, project.owner.timezone, now)
    with connect(project.database_url) as db, db.session() as session:
        reminder = snooze_reminder(session, reminder_id, when, now)
    _report(project, reminder, "Snoozed", as_json)


@app.command("rm")
def remove(ctx: typer.Context, reminder_id: IdArg, as_json: JsonOpt = False) -> None:
    """Cancel a reminder (a repeating one: all of it). It stays in `tars remind list --all`."""
    from tars import timeparse
    from tars.store.database import connect
    from tars.store.reminders import cancel

    project = context.load(ctx)
    with connect(project.database_url) as db, db.session() as session:
        reminder = cancel(session, reminder_id, timeparse.clock_now())
    _report(project, reminder, "Cancelled", as_json)


def _report(project: Project, reminder: Reminder, verb: str, as_json: bool) -> None:
    from tars import timeparse
    from tars.store.reminders import reminder_json

    if as_json:
        output.print_json(reminder_json(reminder))
        return
    line = f"[green]✓[/] {verb}: reminder {reminder.id}, {output.escape(reminder.text)}"
    if reminder.status == "pending":
        line += f" — next {timeparse.show(reminder.due, project.owner.timezone)}"
    output.line(line)


def _status(reminder: Reminder, tz: str) -> str:
    """The status as listed: a delivery that came late (it fell due while no TARS server was
    running) says so and when it came; the last error or note follows."""
    from tars import timeparse

    status = reminder.status
    if reminder.late and reminder.delivered_at is not None:
        when = timeparse.show(reminder.delivered_at, tz)
        status = f"delivered late, {when}" if status == "delivered" else f"{status} (last one delivered late, {when})"
    return f"{status}: {reminder.last_error}" if reminder.last_error else status


def _say_if_months_are_skipped(reminder: Reminder) -> None:
    """A monthly reminder on the 29th-31st skips the months without that day: say so."""
    from tars import timeparse

    rule = (reminder.recurrence or "").upper()
    day = timeparse.local(reminder.due, reminder.timezone).day
    if "FREQ=MONTHLY" in rule and "BYMONTHDAY" not in rule and "BYDAY" not in rule and day > 28:
        output.err.print(
            f"[yellow]Note:[/] months without a {day}{'th' if day < 31 else 'st'} are skipped "
            f"({'February' if day < 31 else 'February, April, June, September and November'}"
            f"{' in most years' if day == 29 else ''}); for the last day of every month use "
            "--every 'FREQ=MONTHLY;BYMONTHDAY=-1'."
        )


def _say_if_no_server(project: Project) -> None:
    """Reminders fire only while `tars serve` runs: say so when none is running."""
    from tars.cli.local_server import server_running

    if not server_running(project):
        output.err.print(
            "[yellow]Note:[/] no TARS server is running for this project; reminders are delivered only while "
            "`tars serve` runs (one that falls due while none runs is handled by delivery.late_reminders "
            "when one starts)."
        )


def _check_channel(project: Project, via: str) -> None:
    """Refuse, when the reminder is added, a channel that could not deliver it when due."""
    from tars.errors import UserError

    # (delivery.reminders: webhook without delivery.webhook is already refused by validation)
    if _channel(project, via) == "webhook" and not (project.section("delivery").get("webhook") or {}).get("url"):
        raise UserError(
            "reminders via webhook need delivery.webhook, which is not configured in tars.yaml",
            "add delivery: {webhook: {url: https://…}} to tars.yaml (an n8n workflow, say), "
            "or choose --via call or --via sms",
        )


def _channel(project: Project, channel: str) -> str:
    if channel != "default":
        return channel
    return str(project.section("delivery").get("reminders") or "call")


def _from_now(when: dt.datetime, now: dt.datetime) -> str:
    seconds = int((when - now).total_seconds())
    if seconds < 60:
        return "in under a minute"
    minutes, _ = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [(days, "day"), (hours, "hour"), (minutes, "minute")]
    shown = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts if n][:2]
    return "in " + " ".join(shown)
