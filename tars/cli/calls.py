"""``tars calls``: the calls TARS made and took, with transcripts, tool use and outcomes."""

from __future__ import annotations

from typing import Annotated

import typer

from tars.cli import context, output

app = typer.Typer(
    help="Calls TARS made and answered: what was said, which tools ran, how it went.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="calls")


@app.command("list")
def list_(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many, latest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The latest calls first."""
    from tars import timeparse
    from tars.store.calls import call_json, list_calls
    from tars.store.contacts import names_by_id
    from tars.store.database import connect

    project = context.load(ctx)
    with connect(project.database_url) as db, db.session() as session:
        calls = list_calls(session, limit)
        names = names_by_id(session, (c.contact_id for c in calls))
    if output.listed(calls, as_json, lambda c: call_json(c, names.get(c.contact_id or 0)), "No calls yet."):
        return
    tz = project.owner.timezone
    table = output.table(caption=f"times in {tz}")
    for header in ("ID", "When", "", "Who", "Playbook", "Status"):
        table.add_column(header, no_wrap=True)
    table.add_column("Summary")
    for call in calls:
        number = call.to_number if call.direction == "outbound" else call.from_number
        who = names.get(call.contact_id or 0) or number
        summary = (call.summary or call.failure_reason or "").splitlines()[0:1]
        table.add_row(
            str(call.id),
            timeparse.show(call.started_at or call.created_at, tz),
            "→" if call.direction == "outbound" else "←",
            output.escape(who),
            output.escape(call.playbook or ""),
            call.status,
            output.escape(summary[0][:80] if summary else ""),
        )
    output.out.print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    call: Annotated[str, typer.Argument(help="The call's id (from `tars calls list`) or its Twilio SID.")],
    as_json: JsonOpt = False,
) -> None:
    """One call: who and why, the transcript, every tool asked for (allowed or refused, and
    why), the outcome and the summary."""
    import json

    from rich.table import Table

    from tars import timeparse
    from tars.store.calls import call_details, details_json
    from tars.store.database import connect

    project = context.load(ctx)
    with connect(project.database_url) as db, db.session() as session:
        details = call_details(session, call)
    if as_json:
        output.print_json(details_json(details))
        return
    tz = project.owner.timezone
    c = details.call
    out = output.out
    arrow = "to" if c.direction == "outbound" else "from"
    number = c.to_number if c.direction == "outbound" else c.from_number
    who = f"{details.contact.name} ({number})" if details.contact else number
    out.print(f"[bold]Call {c.id}[/] {arrow} {output.escape(who)} — {c.status}")
    facts = Table(show_header=False, box=None, pad_edge=False)
    facts.add_column(style="dim")
    facts.add_column()
    duration = ""
    if c.started_at and c.ended_at:
        duration = f"{int((c.ended_at - c.started_at).total_seconds())} s"
    for label, value in (
        ("sid", c.sid),
        ("playbook", c.playbook),
        ("inputs", json.dumps(c.inputs, ensure_ascii=False) if c.inputs else None),
        ("started", timeparse.show(c.started_at, tz)),
        ("ended", timeparse.show(c.ended_at, tz)),
        ("duration", duration),
        ("failure", c.failure_reason),
        ("recording", c.recording_path),
    ):
        if value:
            facts.add_row(label, output.escape(str(value)))
    out.print(facts)
    if details.transcript:
        out.print("\n[bold]Transcript[/]")
        for line in details.transcript:
            stamp = timeparse.local(line.at, tz).strftime("%H:%M:%S")
            speaker, said = output.escape(line.speaker), output.escape(line.text)
            out.print(f"[dim]{stamp}[/] [bold]{speaker}:[/] {said}")
    if details.tools:
        out.print("\n[bold]Tools[/]")
        tools = Table("Time", "Tool", "Arguments", "", "Reason / result", box=None, pad_edge=False)
        for t in details.tools:
            verdict = "[green]allowed[/]" if t.allowed else "[red]denied[/]"
            said = t.reason or ("" if not t.allowed else json.dumps(t.result, ensure_ascii=False))
            tools.add_row(
                timeparse.local(t.at, tz).strftime("%H:%M:%S"),
                output.escape(t.tool),
                output.escape(json.dumps(t.arguments or {}, ensure_ascii=False)),
                verdict,
                output.escape(said or ""),
            )
        out.print(tools)
    if c.outcome is not None:
        source = f" ({c.outcome_source})" if c.outcome_source else ""
        out.print(f"\n[bold]Outcome{source}[/]")
        out.print(output.escape(json.dumps(c.outcome, indent=2, ensure_ascii=False)))
    if c.summary:
        out.print("\n[bold]Summary[/]")
        out.print(output.escape(c.summary))
