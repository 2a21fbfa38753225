"""``tars calls``: the calls TARS made and took, with transcripts, tool use and outcomes."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from tars.cli import context, output
from tars.cli.speakers import other_party, speaker_name

app = typer.Typer(
    help="Calls TARS made and answered: what was said, which tools ran, how it went.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


class ExportFormat(StrEnum):
    wav = "wav"
    json = "json"


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="calls")


@app.command("list")
def list_(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many, latest first.")] = 50,
    scheduled: Annotated[
        bool,
        typer.Option("--scheduled", help="Only calls waiting to be placed (for a time, or a retry), soonest first."),
    ] = False,
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="Only phone calls (voice) or text sessions (text: SMS, n8n, tars send)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The latest calls first."""
    from tars import timeparse
    from tars.store.calls import call_json, list_calls
    from tars.store.contacts import names_by_id
    from tars.store.database import connect

    if kind is not None and kind not in ("voice", "text"):
        from tars.cli.errors import UserError

        raise UserError(f"--kind {kind!r} is not a kind of call", "use --kind voice or --kind text")
    project = context.load(ctx)
    with connect(project.database_url) as db, db.session() as session:
        if scheduled:
            from tars.store.call_queue import scheduled_calls

            calls = scheduled_calls(session, limit)
        else:
            calls = list_calls(session, limit, kind)
        names = names_by_id(session, (c.contact_id for c in calls))
    if scheduled:
        _list_scheduled(project, calls, names, as_json)
        return
    if output.listed(calls, as_json, lambda c: call_json(c, names.get(c.contact_id or 0)), "No calls yet."):
        return
    tz = project.owner.timezone
    rows = []
    for call in calls:
        number = call.to_number if call.direction == "outbound" else call.from_number
        summary = (call.summary or call.failure_reason or "").splitlines()[0:1]
        rows.append(
            [
                str(call.id),
                timeparse.show(call.started_at or call.created_at, tz),
                "✉" if call.kind == "text" else ("→" if call.direction == "outbound" else "←"),
                call.status,
                names.get(call.contact_id or 0) or number,
                call.playbook or "",
                summary[0] if summary else "",
            ]
        )
    headers = ["ID", "When", "", "Status", "Who", "Playbook", "Summary"]
    width = output.out.width
    if width < 100:  # narrow: each call's summary on a line of its own under it, cut to fit
        widths = [max(len(headers[i]), *(len(r[i]) for r in rows)) for i in range(6)]
        widths[4] = min(widths[4], 24)
        widths[5] = max(8, min(widths[5], width - sum(widths[:5]) - 2 * 5))
        output.line("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False)).rstrip())
        for row in rows:
            cells = [_cut(cell, w).ljust(w) for cell, w in zip(row, widths, strict=False)]
            output.line(output.escape("  ".join(cells).rstrip()))
            if row[6]:
                indent = " " * (widths[0] + 2)
                output.line(f"[dim]{indent}{output.escape(_cut(row[6], width - len(indent)))}[/]")
        output.line(f"times in {tz}")
        return
    widths = [min(max(len(headers[i]), *(len(r[i]) for r in rows)), 24) for i in range(6)]
    widths.append(max(12, width - sum(widths) - 2 * 6))  # one line a call: the summary gets the rest
    table = output.table(caption=f"times in {tz}")
    for header, wide in zip(headers, widths, strict=True):
        table.add_column(header, no_wrap=True, overflow="ellipsis", max_width=wide)
    for row in rows:
        table.add_row(*(output.escape(_cut(cell, wide)) for cell, wide in zip(row, widths, strict=True)))
    output.out.print(table)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _list_scheduled(project: Any, calls: list[Any], names: dict[int, str], as_json: bool) -> None:
    from tars import timeparse
    from tars.store.calls import call_json

    def row(call: Any) -> dict[str, Any]:
        return {**call_json(call, names.get(call.contact_id or 0)), "waits": _waits(project, call)}

    empty = "No calls are scheduled. Schedule one with [bold]tars call NAME --playbook P --at 'tomorrow 10am'[/]."
    if output.listed(calls, as_json, row, empty):
        return
    tz = project.owner.timezone
    table = output.table(caption=f"times in {tz}")
    for header in ("ID", "Due", "Who", "Playbook", "Attempt"):
        table.add_column(header, no_wrap=True)
    table.add_column("Waits")
    for call in calls:
        waits = _waits(project, call)
        table.add_row(
            str(call.id),
            timeparse.show(call.scheduled_at, tz),
            output.escape(names.get(call.contact_id or 0) or call.callee or call.to_number),
            output.escape(call.playbook or ""),
            str(call.attempt),
            output.escape(waits["reason"]),
        )
    output.out.print(table)


def _waits(project: Any, call: Any) -> dict[str, Any]:
    """Why a scheduled call waits: its time, a retry's back-off, or the calling window."""
    from tars import timeparse
    from tars.cli.calling_window import window_state

    now = timeparse.clock_now()
    due = max(call.scheduled_at, now)
    window = window_state(project, call.playbook or "", call.to_number, due) if call.playbook else None
    if window is not None and not window["open"]:
        reason = f"the calling window ({window['hours']}) opens {window['opens']}"
    elif call.scheduled_at > now:
        reason = f"retry of call {call.retry_of}, after it ended" if call.retry_of else "the time it was scheduled for"
    else:
        reason = "a running `tars serve` to place it (it is due)"
    return {"reason": reason, "window": window}


@app.command("search")
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="Words said on the call, or in its summary or outcome: 'dentist'.")],
    since: Annotated[
        str | None, typer.Option("--since", help="Only calls since then: 'last week', 'yesterday', 2025-03-01.")
    ] = None,
    with_: Annotated[
        str | None, typer.Option("--with", help="Only calls with this contact, business or number: --with Helen.")
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="Only calls of a kind: goal, inbound, reminder, outbound or text (text sessions)."),
    ] = None,
    semantic: Annotated[
        bool,
        typer.Option(
            "--semantic",
            help="By meaning, not words: 'tooth doctor' finds the dentist (embeddings: search.embeddings).",
        ),
    ] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=200, help="How many calls, best first.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Search past calls: transcripts, summaries and outcomes, best match first, with the line that matched."""
    from tars import timeparse
    from tars.recall import Search, find, hit_json
    from tars.store.database import connect

    project = context.load(ctx)
    asked = Search(query, since=since, with_=with_, kind=kind, limit=limit)
    with connect(project.database_url) as db:
        if semantic:
            found = _by_meaning(project, db, asked)
        else:
            with db.session() as session:
                found = find(session, project, asked, timeparse.clock_now())
    _print_hits(project, found, query, as_json, hit_json)


def _by_meaning(project: Any, db: Any, asked: Any) -> Any:
    import asyncio

    import aiohttp
    import httpx
    from google.genai import errors

    from tars import timeparse
    from tars.endpoints import Endpoints
    from tars.errors import UserError
    from tars.semantic import embeddings_of, find_by_meaning, model_of

    endpoints = Endpoints.from_project(project)
    if embeddings_of(project) == "gemini" and not endpoints.gemini_api_key:
        raise UserError("--semantic needs the Gemini API: model.api_key is not set", "set GEMINI_API_KEY (or .env)")
    try:
        return asyncio.run(find_by_meaning(db.run, endpoints, project, asked, timeparse.clock_now()))
    except errors.APIError as exc:
        raise UserError(
            f"the Gemini embedding model {model_of(project)} answered {exc.code}: {exc.message}",
            "check model.api_key and model.embedding_model in tars.yaml",
        ) from None
    except (OSError, httpx.TransportError, aiohttp.ClientError) as exc:
        raise UserError(
            f"cannot reach the Gemini API for --semantic: {exc}",
            "check the network (and model.base_url), or search by words without --semantic",
        ) from None


def _print_hits(project: Any, found: Any, query: str, as_json: bool, to_json: Any) -> None:
    from tars import timeparse
    from tars.recall import who_of

    names = found.names
    narrowed = "".join(
        part
        for part in (
            f" since {timeparse.show(found.since, project.owner.timezone)}" if found.since else "",
            f" with {found.who}" if found.who else "",
        )
    )
    empty = f"No call matches {query!r}{narrowed}."
    if output.listed(found.hits, as_json, lambda h: to_json(h, names), output.escape(empty)):
        return
    tz = project.owner.timezone
    width = output.out.width
    for hit in found.hits:
        call = hit.call
        arrow = "✉" if call.kind == "text" else ("→" if call.direction == "outbound" else "←")
        when = timeparse.show(call.started_at or call.created_at, tz)
        head = f"{call.id}  {when}  {arrow} {who_of(call, names)}"
        if call.playbook:
            head += f"  ({call.playbook})"
        match = hit.match
        if match.source == "transcript":
            party = other_party(names.get(call.contact_id or 0) or call.callee, outbound=call.direction == "outbound")
            said = f"{speaker_name(match.speaker or '', project.persona.name, party)}: {match.text}"
        else:
            said = f"{match.source}: {match.text}"
        output.line(f"[bold]{output.escape(head)}[/]")
        output.line("    " + output.escape(_cut(" ".join(said.split()), max(width - 4, 20))))
    output.line(f"[dim]{len(found.hits)} call{'s' * (len(found.hits) != 1)}, best match first; times in {tz}[/]")


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
    c = details.call
    waiting = c.status == "queued" and c.sid is None and c.scheduled_at is not None
    waits = _waits(project, c) if waiting else None
    if as_json:
        output.print_json({**details_json(details), "waits": waits})
        return
    tz = project.owner.timezone
    out = output.out
    arrow = "to" if c.direction == "outbound" else "from"
    number = c.to_number if c.direction == "outbound" else c.from_number
    name = details.contact.name if details.contact else c.callee
    who = f"{name} ({number})" if name and name != number else number
    out.print(f"[bold]Call {c.id}[/] {arrow} {output.escape(who)} — {c.status}")
    facts = Table(show_header=False, box=None, pad_edge=False)
    facts.add_column(style="dim")
    facts.add_column()
    shown_inputs = {k: v for k, v in (c.inputs or {}).items() if not k.startswith("_")}
    duration = ""
    if c.started_at and c.ended_at:
        duration = f"{int((c.ended_at - c.started_at).total_seconds())} s"
    for label, value in (
        ("sid", c.sid),
        ("playbook", c.playbook),
        ("inputs", json.dumps(shown_inputs, ensure_ascii=False) if shown_inputs else None),
        ("scheduled", timeparse.show(c.scheduled_at, tz) if c.scheduled_at else None),
        ("waits for", waits["reason"] if waits else None),
        ("window", c.window_override),
        ("attempt", f"{c.attempt} (retry of call {c.retry_of})" if c.retry_of else None),
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
        party = other_party(name, outbound=c.direction == "outbound")
        for line in details.transcript:
            stamp = timeparse.local(line.at, tz).strftime("%H:%M:%S")
            speaker = output.escape(speaker_name(line.speaker, project.persona.name, party))
            said = output.escape(line.text)
            out.print(f"[dim]{stamp}[/] [bold]{speaker}:[/] {said}")
    if details.tools:
        out.print("\n[bold]Tools[/]")
        narrow = out.width < 100  # a five-column table of JSON runs to a word a line: one line per tool
        tools = Table("Time", "Tool", "Arguments", "", "Reason / result", box=None, pad_edge=False)
        for t in details.tools:
            verdict = "[green]allowed[/]" if t.allowed else "[red]denied[/]"
            said = t.reason or ("" if not t.allowed else json.dumps(t.result, ensure_ascii=False))
            cells = (
                timeparse.local(t.at, tz).strftime("%H:%M:%S"),
                output.escape(t.tool),
                output.escape(json.dumps(t.arguments or {}, ensure_ascii=False)),
                verdict,
                output.escape(said or ""),
            )
            if narrow:
                at, tool, arguments, _, result = cells
                out.print(f"[dim]{at}[/] [bold]{tool}[/] {arguments} {verdict}" + (f" → {result}" if result else ""))
            else:
                tools.add_row(*cells)
        if not narrow:
            out.print(tools)
    if details.transfers:
        from tars.store.transfers import describe

        out.print("\n[bold]Transfers[/]")
        for t in details.transfers:
            stamp = timeparse.local(t.started_at, tz).strftime("%H:%M:%S")
            out.print(f"[dim]{stamp}[/] {output.escape(describe(t))}")
    if c.sources:
        out.print("\n[bold]Sources[/] (Google Search)")
        for n, found in enumerate(c.sources, 1):
            title = found.get("title") or found.get("uri")
            out.print(f"[dim]{n}.[/] {output.escape(str(title))} — {output.escape(str(found.get('uri', '')))}")
            for said in found.get("supports") or []:
                out.print(f"     [dim]“{output.escape(str(said))}”[/]")
    if c.outcome is not None:
        source = f" ({c.outcome_source})" if c.outcome_source else ""
        out.print(f"\n[bold]Outcome{source}[/]")
        out.print(output.escape(json.dumps(c.outcome, indent=2, ensure_ascii=False)))
    if c.summary:
        out.print("\n[bold]Summary[/]")
        out.print(output.escape(c.summary))


@app.command("join")
def join(
    ctx: typer.Context,
    call: Annotated[int, typer.Argument(help="The live goal call's id (from `tars sessions` or `tars calls list`).")],
) -> None:
    """Take over a live goal call: TARS rings your phone; press 1 or say yes and you are put
    into the call, TARS leaves, and the call's outcome is taken_over."""
    from tars.cli.call import api_client

    project = context.load(ctx)
    answer = api_client(project).post(f"/api/calls/{call}/join", {})
    output.out.print(
        f"Ringing you on {output.escape(str(answer.get('ringing')))} to take over call {call} with "
        f"{output.escape(str(answer.get('callee')))}: press 1 or say yes when it rings."
    )


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    call: Annotated[str, typer.Argument(help="The scheduled call's id (from `tars calls list --scheduled`).")],
    as_json: JsonOpt = False,
) -> None:
    """Cancel a scheduled call (or a retry) before it is placed. Calls already placed are not touched."""
    from tars import timeparse
    from tars.errors import UserError
    from tars.store.call_queue import cancel_scheduled_call
    from tars.store.calls import call_json
    from tars.store.database import connect

    if not call.strip().isdigit():
        raise UserError(f"{call!r} is not a call id", "give the number from `tars calls list --scheduled`", code=2)
    project = context.load(ctx)
    with connect(project.database_url) as db, db.session() as session:
        cancelled = cancel_scheduled_call(session, int(call), timeparse.clock_now())
    if as_json:
        output.print_json(call_json(cancelled))
        return
    who = cancelled.callee or cancelled.to_number
    due = timeparse.show(cancelled.scheduled_at, project.owner.timezone)
    output.line(f"[green]✓[/] Cancelled call {cancelled.id} to {output.escape(who)} ({cancelled.playbook}, due {due})")


def _recording(project: Any, call: str) -> tuple[Any, Any]:
    """The call and its recording file; a clear word when there is none."""
    from tars.errors import UserError
    from tars.store.calls import get_call
    from tars.store.database import connect
    from tars.store.recordings import recording_of

    with connect(project.database_url) as db, db.session() as session:
        found = get_call(session, call)
    path = recording_of(project.state_dir, found)
    if path is not None:
        return found, path
    if found.recording_path:
        raise UserError(
            f"the recording of call {found.id} is no longer in the state folder",
            f"recordings are deleted after recording.keep_days days; its transcript is in `tars calls show {found.id}`",
        )
    raise UserError(
        f"call {found.id} was not recorded",
        "calls are recorded for the roles with `recording: {enabled: true}` in tars.yaml (roles.<role>); "
        f"its transcript is in `tars calls show {found.id}`",
    )


#: Players tried in order, with what makes them play a file once, quietly, and exit.
PLAYERS = (("aplay", ["-q"]), ("ffplay", ["-nodisp", "-autoexit", "-loglevel", "error"]), ("afplay", []))


@app.command("play")
def play(
    ctx: typer.Context,
    call: Annotated[str, typer.Argument(help="The call's id (from `tars calls list`) or its Twilio SID.")],
) -> None:
    """Play a call's recording (the other party left, TARS right) with aplay, ffplay or afplay."""
    import shutil
    import subprocess

    project = context.load(ctx)
    found, path = _recording(project, call)
    for name, flags in PLAYERS:
        player = shutil.which(name)
        if player is not None:
            output.line(f"Playing call {found.id} ({output.escape(str(path))}) with {name}; Ctrl-C stops it.")
            subprocess.run([player, *flags, str(path)], check=False)
            return
    output.line(
        f"No audio player found (aplay, ffplay or afplay). The recording of call {found.id} is "
        f"{output.escape(str(path))}: a stereo 8 kHz WAV any audio player opens, or copy it "
        f"elsewhere with `tars calls export {found.id}`."
    )


@app.command("export")
def export(
    ctx: typer.Context,
    call: Annotated[str, typer.Argument(help="The call's id (from `tars calls list`) or its Twilio SID.")],
    format_: Annotated[
        ExportFormat,
        typer.Option("--format", "-f", help="wav: the recording; json: the call, its transcript and tools."),
    ] = ExportFormat.wav,
    to: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Where to write it (default: call-<id>.<format> here; - for stdout)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the file if it exists.")] = False,
) -> None:
    """Write a call out: its recording (WAV) or the call with its transcript (JSON)."""
    import json
    import sys
    from pathlib import Path

    from tars.errors import UserError
    from tars.store.calls import call_details, details_json
    from tars.store.database import connect

    project = context.load(ctx)
    format_ = ExportFormat(format_)
    if format_ is ExportFormat.wav:
        found, source = _recording(project, call)
        data = source.read_bytes()
    else:
        with connect(project.database_url) as db, db.session() as session:
            details = call_details(session, call)
        found = details.call
        data = (json.dumps(details_json(details), indent=2, ensure_ascii=False) + "\n").encode()
    if to == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    target = Path(to or f"call-{found.id}.{format_.value}")
    if target.exists() and not force:
        raise UserError(f"{target} already exists", "choose another with --output, or replace it with --force")
    try:
        target.write_bytes(data)
        if format_ is ExportFormat.wav:
            target.chmod(0o600)  # a recording stays the owner's, wherever it is copied
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UserError(f"could not write {target}: {reason}", "choose another place with --output") from exc
    output.line(f"[green]✓[/] Wrote call {found.id} to {output.escape(str(target))}")


@app.command("delete")
def delete(
    ctx: typer.Context,
    call: Annotated[str, typer.Argument(help="The call's id (from `tars calls list`) or its Twilio SID.")],
) -> None:
    """Delete a call that has ended: its transcript, tool use, outcome and recording."""
    from tars.store.database import connect
    from tars.store.recordings import delete_call

    project = context.load(ctx)
    with connect(project.database_url) as db, db.session() as session:
        deleted = delete_call(session, project.state_dir, call)
    number = deleted.to_number if deleted.direction == "outbound" else deleted.from_number
    kept = " and its recording" if deleted.recording_path else ""
    output.line(f"[green]✓[/] Deleted call {deleted.id} ({output.escape(number)}){kept}")
