"""``tars call TARGET --playbook NAME``: a goal call placed by the running server, watched live."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from tars.cli import context, output
from tars.errors import UserError


def call(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="Who to call: a contact, a directory entry (dentist) or a number.")],
    playbook: Annotated[str, typer.Option("--playbook", "-b", help="The playbook to follow (playbooks/NAME.yaml).")],
    var: Annotated[list[str] | None, typer.Option("--var", "-v", help="An input, key=value (repeatable).")] = None,
    at: Annotated[str | None, typer.Option(help="Place the call later: 'tomorrow 10am', 'in 2 hours'.")] = None,
    wait: Annotated[
        bool | None, typer.Option("--wait/--no-wait", help="Watch the call live (default on a terminal).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would happen; dial nothing.")] = False,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes",
            "-y",
            help="Call the best match of a name that is not exact without asking (for scripts). "
            "An ambiguous name is still refused.",
        ),
    ] = False,
    simulate: Annotated[
        bool,
        typer.Option(
            "--simulate",
            help="Run the call offline against the emulators (the other end plays one of the playbook's scenarios).",
        ),
    ] = False,
    scenario: Annotated[
        str | None,
        typer.Option(
            "--scenario",
            help="With --simulate: the scenario to play "
            "(playbooks/scenarios/PLAYBOOK/NAME.yaml; default: its first "
            "success).",
            show_default=False,
        ),
    ] = None,
    now: Annotated[
        bool,
        typer.Option(
            "--now",
            help="Call now even outside the playbook's calling window (the call record says so).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Call someone on your behalf, following a playbook, and report what was achieved."""
    from tars.graph.call_plan import InputError, prepare_call

    project = context.load(ctx)
    inputs = context.parse_vars(var or [])
    if playbook not in project.playbooks:
        from tars.config.diagnostics import suggestion

        raise UserError(
            f"'{playbook}' is not a playbook{suggestion(playbook, project.playbooks)}",
            f"Playbooks: {', '.join(sorted(project.playbooks))}",
        )
    book = project.playbooks[playbook]
    if scenario is not None and not simulate:
        raise UserError("--scenario goes with --simulate", "add --simulate to play that scenario offline", code=2)
    if simulate:  # inputs missing from --var come from the scenario: checked there
        from tars.cli.simulate_call import simulate_call

        raise typer.Exit(
            simulate_call(
                project,
                playbook,
                _resolve(project, target, lenient=True)[0],
                inputs,
                scenario=scenario,
                as_json=as_json,
            )
        )
    while True:
        try:
            plan = prepare_call(project, playbook, inputs)
            break
        except InputError as exc:
            if (
                exc.missing
                and sys.stdin.isatty()
                and not exc.problems[len(exc.missing) :]
                and len(exc.problems) == len(exc.missing)
            ):
                for spec in exc.missing:
                    inputs[spec.name] = typer.prompt(spec.description or spec.name)
                continue
            hint = (
                "pass them with --var key=value" if exc.missing else f"inputs of {playbook}: {', '.join(book.inputs)}"
            )
            raise UserError("; ".join(exc.problems), hint) from None
    resolved, exact = _resolve(project, target, lenient=dry_run, yes=yes)
    if dry_run:
        _show_plan(project, plan, resolved, as_json, exact=exact or yes, query=target, at=at)
        return
    if now and at:
        raise UserError("--now and --at contradict each other", "give one of them", code=2)
    overridden = None
    if not at:
        at, overridden = _inside_window(project, playbook, resolved, now)
    client = api_client(project)
    placed = client.post(
        "/api/calls",
        {"target": resolved["phone"], "playbook": playbook, "inputs": inputs, **({"at": at} if at else {})},
    )
    if overridden and placed.get("call_id"):
        _record_override(project, int(placed["call_id"]), overridden)
    if as_json and not (wait if wait is not None else False):
        output.print_json(placed)
        return
    if placed.get("scheduled_at"):
        import datetime as dt

        from tars.cli.calling_window import window_state

        due = dt.datetime.fromisoformat(placed["scheduled_at"])
        window = window_state(project, playbook, resolved["phone"], due)
        waits = "" if window["open"] else f" It waits for the calling window, which opens {window['opens']}."
        output.err.print(
            f"[green]Scheduled[/] a call to {resolved['name']} ({resolved['phone']}) for "
            f"{placed['scheduled']} — call {placed['call_id']}; the server places it when due.{waits} "
            f"Cancel it with [bold]tars calls cancel {placed['call_id']}[/]."
        )
        if as_json:
            output.print_json(placed)
        return
    output.err.print(f"[green]Calling[/] {resolved['name']} ({resolved['phone']}) — call {placed['call_id']}")
    if wait if wait is not None else sys.stdout.isatty():
        from tars.cli.live_view import watch

        final = watch(client, placed["call_id"], show=not as_json, persona=project.persona.name)
        if as_json:
            output.print_json(final)
    else:
        output.err.print(f"The server owns the call; follow it with [bold]tars calls show {placed['call_id']}[/].")


def _resolve(project: Any, target: str, *, lenient: bool = False, yes: bool = False) -> tuple[dict[str, Any], bool]:
    """Who ``target`` is, deliberately (see ``tars.store.resolve.choose``): an exact name, alias or
    number; otherwise a person at a terminal confirms, or ``--yes`` takes the best match.
    Returns the target and whether its name was exact.
    ``lenient`` (--dry-run, --simulate: nothing real is dialled) takes the best match and
    says so."""
    from tars.store.contacts import resolve_in
    from tars.store.database import connect
    from tars.store.resolve import choose

    with connect(project.database_url) as db, db.session() as session:
        found = resolve_in(session, project, target)
    ask = _ask if sys.stdin.isatty() and not lenient else None
    best = choose(found, ask=ask, accept_best=yes or lenient)
    return {"name": best.name, "phone": best.phone, "source": best.source}, best.exact


def _inside_window(project: Any, playbook: str, resolved: dict[str, Any], now: bool) -> tuple[str | None, str | None]:
    """A call asked for now, against the playbook's calling window: open, it goes (None, None);
    closed, ``--now`` sends it anyway (None, the note for the call record), a person at a
    terminal may schedule it for the opening (its time, None); otherwise UserError."""
    from tars import timeparse
    from tars.cli.calling_window import window_state

    window = window_state(project, playbook, resolved["phone"], timeparse.clock_now())
    if window["open"]:
        return None, None
    closed = f"the calling window of {playbook} is closed now: it opens {window['opens']} ({window['hours']})"
    if now:
        return None, f"placed outside the calling window with --now ({closed})"
    if sys.stdin.isatty():
        question = f"{closed[0].upper()}{closed[1:]}. Schedule the call for then?"
        if typer.confirm(question, default=True):
            return str(window["opens_at"]), None
        raise UserError("nothing was dialled: " + closed, "call anyway with --now, or pick a time with --at")
    opens = _wall(window["opens_at"], project.owner.timezone)
    raise UserError(closed, f"schedule it with --at '{opens}', or call anyway with --now")


def _wall(iso: str, timezone: str) -> str:
    """An ISO instant as the owner's wall-clock time, as `--at` reads it: ``2026-12-03T09:00``."""
    import datetime as dt

    from tars import timeparse

    return timeparse.local(dt.datetime.fromisoformat(iso), timezone).strftime("%Y-%m-%dT%H:%M")


def _record_override(project: Any, call_id: int, note: str) -> None:
    """Say in the call record that it was placed outside its calling window (``--now``)."""
    from tars.store.calls import update_call
    from tars.store.database import connect

    with connect(project.database_url) as db, db.session() as session:
        update_call(session, call_id, window_override=note)
        session.commit()


def _ask(found: Any) -> Any:
    """At a terminal: confirm a fuzzy match, or pick one of an ambiguous name's candidates."""
    from rich.markup import escape

    if found.best is not None:
        question = f"'{found.query}' is not an exact name. Call {found.best.describe()}?"
        return found.best if typer.confirm(question, default=False) else None
    output.err.print(f"'{escape(found.query)}' could mean several:")
    shown = found.candidates[:9]
    for i, candidate in enumerate(shown, 1):
        output.err.print(f"  {i}. {escape(candidate.describe())}")
    answer = typer.prompt("Call which one? (its number; Enter for none)", default="", show_default=False)
    answer = answer.strip()
    return shown[int(answer) - 1] if answer.isdigit() and 1 <= int(answer) <= len(shown) else None


def _show_plan(
    project: Any, plan: Any, resolved: dict[str, Any], as_json: bool, *, exact: bool, query: str, at: str | None
) -> None:
    from tars import timeparse
    from tars.cli.calling_window import in_words, window_state

    now = timeparse.clock_now()
    when = timeparse.parse_future(at, project.owner.timezone, now) if at else now
    window = window_state(project, plan.playbook.name, resolved["phone"], when)
    data = {
        "target": resolved,
        "needs_confirmation": not exact,
        "at": when.isoformat() if at else None,
        "window": window,
        "playbook": plan.playbook.name,
        "role": plan.playbook.role,
        "inputs": dict(plan.inputs),
        "goal": plan.goal,
        "tools": list(plan.tool_set),
        "steps": [
            {
                "id": s,
                "tools": list(plan.allowed_tools(s)),
                "instructions": plan.instructions(s),
                "next": [t.to for t in plan.steps[s].transitions],
            }
            for s in plan.steps
        ],
        "voicemail": plan.playbook.voicemail_action,
    }
    if as_json:
        output.print_json(data)
        return
    from rich.markup import escape

    out = output.out
    out.print(f"[bold]Would call[/] {escape(resolved['name'])} ({resolved['phone']}, from {resolved['source']})")
    if not exact:
        out.print(
            f"  [yellow]'{escape(query)}' is not an exact name:[/] without --dry-run, tars call asks you to confirm "
            "(or takes the best match with --yes)"
        )
    moment = f"at {timeparse.show(when, project.owner.timezone)}" if at else "now"
    out.print(f"[bold]Calling window[/] {escape(in_words(window, moment))}")
    out.print(f"[bold]Playbook[/] {plan.playbook.name}, running as role [cyan]{plan.playbook.role}[/]")
    out.print("[bold]Inputs[/] " + ", ".join(f"{k}={v}" for k, v in plan.inputs.items()))
    out.print(f"[bold]Goal[/] {escape(plan.goal)}")
    out.print(f"[bold]Tools[/] {', '.join(plan.tool_set)}")
    for i, step in enumerate(data["steps"], 1):
        out.print(
            f"  {i}. [yellow]{step['id']}[/] (tools: {', '.join(step['tools']) or '—'}) → {', '.join(step['next'])}"
        )
        out.print(f"     [dim]{escape(step['instructions'])}[/]")
    out.print("[dim]Nothing was dialled (--dry-run).[/]")


class ApiClient:
    """The CLI's side of the local API (standard library HTTP; the server is on this machine)."""

    def __init__(self, base: str, token: str):
        self.base = base.rstrip("/")
        self.token = token

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        import json
        import urllib.error
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read() or b"{}")
            except ValueError:
                detail = {}
            message = detail.get("error") or f"HTTP {exc.code}"
            candidates = detail.get("candidates")
            hint = ("could mean: " + "; ".join(c["name"] for c in candidates)) if candidates else None
            raise UserError(f"the server refused: {message}", hint) from None
        except (urllib.error.URLError, OSError) as exc:
            raise UserError(
                f"no TARS server is answering at {self.base} ({getattr(exc, 'reason', exc)})",
                "start one with `tars serve` (it places and owns the call), or try `--simulate`",
            ) from None

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", path, body)

    def get(self, path: str) -> dict[str, Any]:
        return self._request("GET", path)


def api_client(project: Any) -> ApiClient:
    from tars.cli.local_server import server_base
    from tars.server.api import read_token

    token = read_token(project)
    base = server_base(project)
    if not token:
        raise UserError(
            f"no TARS server has run for this project yet (no API token in {project.state_dir})",
            "start one with `tars serve`, or try `--simulate`",
        )
    return ApiClient(base, token)


def register(app: typer.Typer) -> None:
    app.command("call")(call)
