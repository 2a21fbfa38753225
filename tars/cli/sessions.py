"""``tars sessions``: the calls (and text conversations) live right now, on every server sharing the database."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tars.cli import context, output

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def register(root: typer.Typer) -> None:
    root.command("sessions")(sessions)


def session_name(call: Any, owner: str) -> str:
    """What people call it: "the call with Helen", "the book_appointment call to Bright Smile Dental"."""
    other = call.callee or (call.to_number if call.direction == "outbound" else call.from_number)
    if call.kind == "text":
        return f"the text conversation with {call.callee or call.from_number}"
    if call.reminder_id is not None:
        return f"the reminder call to {owner}"
    if call.playbook:
        return f"the {call.playbook} call to {other}"
    return f"the call with {other}"


def session_json(call: Any, owner: str) -> dict[str, Any]:
    return {
        "call_id": call.id,
        "name": session_name(call, owner),
        "role": call.role,
        "purpose": "text"
        if call.kind == "text"
        else ("reminder" if call.reminder_id is not None else ("goal" if call.playbook else "inbound")),
        "playbook": call.playbook,
        "step": call.step,
        "status": call.status,
        "server": call.live_on,
        "started_at": call.started_at.isoformat() if call.started_at else None,
        "heartbeat_until": call.live_until.isoformat() if call.live_until else None,
    }


def sessions(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """The calls live now, on every tars serve sharing this database: who, why, which step, which server."""
    import datetime as dt

    from tars import timeparse
    from tars.store.call_queue import live_sessions
    from tars.store.database import connect

    project = context.load(ctx)
    owner = project.owner.name
    with connect(project.database_url) as db, db.session() as session:
        live = live_sessions(session, dt.datetime.now(dt.UTC))
    if output.listed(live, as_json, lambda c: session_json(c, owner), "No live calls (on any server)."):
        return
    rows = output.table("id", "session", "role", "step", "server", "since")
    for call in live:
        since = timeparse.show(call.started_at or call.created_at, project.owner.timezone)
        rows.add_row(
            str(call.id),
            output.escape(session_name(call, owner)),
            call.role or "",
            call.step or "",
            output.escape(call.live_on or ""),
            since,
        )
    output.out.print(rows)
