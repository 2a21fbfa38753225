"""``tars security``: the inbound requests TARS refused (forged webhooks, used stream
parameters, PIN entry locked, wrong API tokens), latest first."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tars.cli import context, output

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
LimitOpt = Annotated[int, typer.Option("--limit", min=1, max=10_000, help="Show at most this many.")]


HELP = (
    "The requests TARS refused (forged webhooks, used stream parameters, PIN lockouts, wrong API tokens), latest first."
)


def register(root: typer.Typer) -> None:
    root.command("security", help=HELP)(security)


def event_json(event: Any) -> dict[str, Any]:
    return {"at": event.at.isoformat(), "kind": event.kind, "detail": event.detail, "source": event.source}


def security(ctx: typer.Context, limit: LimitOpt = 50, as_json: JsonOpt = False) -> None:
    """Print the refused requests (``HELP``)."""
    from tars import timeparse
    from tars.store.database import connect
    from tars.store.security_events import recent

    project = context.load(ctx)
    with connect(project.database_url) as db, db.session() as session:
        events = recent(session, limit)
    if output.listed(events, as_json, event_json, "No refused requests."):
        return
    rows = output.table("when", "kind", "what was refused", "from")
    for event in events:
        rows.add_row(
            timeparse.show(event.at, project.owner.timezone),
            event.kind,
            output.escape(event.detail),
            output.escape(event.source or ""),
        )
    output.out.print(rows)
